# This file is internal to the snowrpa.robot_certs collection and may change in any release.
# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell Ansible.ModuleUtils.AddType

# Private key ACLs through the key provider, as certlm.msc's Manage Private Keys does (REFERENCE 4):
# CAPI keys through PP_KEYSET_SEC_DESCR, CNG keys through the "Security Descr" property, so RSA and
# ECDSA keys of either provider work without guessing file paths under MachineKeys.

$script:KeyAclCode = @'
using System;
using System.ComponentModel;
using System.Runtime.InteropServices;

namespace SnowRpa.RobotCerts.KeyAcl
{
    // Reason is "missing" (no key, or its container is gone), "denied" (no access) or "error".
    public class KeyAccessException : Win32Exception
    {
        public string Reason;

        public KeyAccessException(string reason, int code, string action)
            : base(code, String.Format("{0} failed: {1} (0x{2:X8})", action, new Win32Exception(code).Message, code))
        {
            Reason = reason;
        }
    }

    public class KeyInfo
    {
        public bool IsCng;
        public string Provider;
        public string Container;
        public uint ProviderType;
        public bool MachineKey;
        public uint KeySpec;
    }

    // Public so the compiler does not warn (CS0649) that only the marshaller assigns its fields.
    [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
    public struct CRYPT_KEY_PROV_INFO
    {
        public string pwszContainerName;
        public string pwszProvName;
        public uint dwProvType;
        public uint dwFlags;
        public uint cProvParam;
        public IntPtr rgProvParam;
        public uint dwKeySpec;
    }

    internal static class NativeMethods
    {
        [DllImport("crypt32.dll", SetLastError = true)]
        public static extern bool CertGetCertificateContextProperty(IntPtr pCertContext, uint dwPropId,
            IntPtr pvData, ref uint pcbData);

        [DllImport("advapi32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        public static extern bool CryptAcquireContextW(out IntPtr phProv, string pszContainer, string pszProvider,
            uint dwProvType, uint dwFlags);

        [DllImport("advapi32.dll", SetLastError = true)]
        public static extern bool CryptGetProvParam(IntPtr hProv, uint dwParam, byte[] pbData, ref uint pdwDataLen,
            uint dwFlags);

        [DllImport("advapi32.dll", SetLastError = true)]
        public static extern bool CryptSetProvParam(IntPtr hProv, uint dwParam, byte[] pbData, uint dwFlags);

        [DllImport("advapi32.dll", SetLastError = true)]
        public static extern bool CryptReleaseContext(IntPtr hProv, uint dwFlags);

        [DllImport("ncrypt.dll", CharSet = CharSet.Unicode)]
        public static extern int NCryptOpenStorageProvider(out IntPtr phProvider, string pszProviderName, uint dwFlags);

        [DllImport("ncrypt.dll", CharSet = CharSet.Unicode)]
        public static extern int NCryptOpenKey(IntPtr hProvider, out IntPtr phKey, string pszKeyName,
            uint dwLegacyKeySpec, uint dwFlags);

        [DllImport("ncrypt.dll", CharSet = CharSet.Unicode)]
        public static extern int NCryptGetProperty(IntPtr hObject, string pszProperty, byte[] pbOutput, uint cbOutput,
            out uint pcbResult, uint dwFlags);

        [DllImport("ncrypt.dll", CharSet = CharSet.Unicode)]
        public static extern int NCryptSetProperty(IntPtr hObject, string pszProperty, byte[] pbInput, uint cbInput,
            uint dwFlags);

        [DllImport("ncrypt.dll")]
        public static extern int NCryptFreeObject(IntPtr hObject);
    }

    public static class KeySecurity
    {
        const uint CERT_KEY_PROV_INFO_PROP_ID = 2;
        const uint CRYPT_MACHINE_KEYSET = 0x20;        // also the machine flag in CRYPT_KEY_PROV_INFO.dwFlags
        const uint CRYPT_SILENT = 0x40;
        const uint PP_KEYSET_SEC_DESCR = 8;
        const uint DACL_SECURITY_INFORMATION = 0x4;
        const uint NCRYPT_MACHINE_KEY_FLAG = 0x20;
        const uint NCRYPT_SILENT_FLAG = 0x40;
        const uint NCRYPT_PERSIST_FLAG = 0x80000000;
        const string NCRYPT_SECURITY_DESCR_PROPERTY = "Security Descr";

        static string Reason(int code)
        {
            switch ((uint)code)
            {
                case 0x80090016:    // NTE_BAD_KEYSET
                case 0x8009000D:    // NTE_NO_KEY
                case 0x80090011:    // NTE_NOT_FOUND
                case 0x80092004:    // CRYPT_E_NOT_FOUND
                case 0x80070002:    // HRESULT of ERROR_FILE_NOT_FOUND
                case 2:             // ERROR_FILE_NOT_FOUND
                    return "missing";
                case 0x80090010:    // NTE_PERM
                case 0x80070005:    // E_ACCESSDENIED
                case 5:             // ERROR_ACCESS_DENIED
                    return "denied";
                default:
                    return "error";
            }
        }

        static KeyAccessException Fail(int code, string action)
        {
            return new KeyAccessException(Reason(code), code, action);
        }

        // Reads CERT_KEY_PROV_INFO_PROP_ID: which provider and container hold the key, without opening it.
        public static KeyInfo GetKeyInfo(IntPtr certContext)
        {
            uint size = 0;
            if (!NativeMethods.CertGetCertificateContextProperty(certContext, CERT_KEY_PROV_INFO_PROP_ID, IntPtr.Zero,
                ref size))
                throw Fail(Marshal.GetLastWin32Error(), "reading the certificate's key provider information");

            IntPtr buffer = Marshal.AllocHGlobal((int)size);
            try
            {
                if (!NativeMethods.CertGetCertificateContextProperty(certContext, CERT_KEY_PROV_INFO_PROP_ID, buffer,
                    ref size))
                    throw Fail(Marshal.GetLastWin32Error(), "reading the certificate's key provider information");
                CRYPT_KEY_PROV_INFO info = (CRYPT_KEY_PROV_INFO)Marshal.PtrToStructure(buffer,
                    typeof(CRYPT_KEY_PROV_INFO));
                KeyInfo key = new KeyInfo();
                key.Provider = info.pwszProvName;
                key.Container = info.pwszContainerName;
                key.ProviderType = info.dwProvType;
                key.IsCng = info.dwProvType == 0;    // CNG key storage providers have no CAPI provider type
                key.MachineKey = (info.dwFlags & CRYPT_MACHINE_KEYSET) != 0;
                key.KeySpec = info.dwKeySpec;
                return key;
            }
            finally
            {
                Marshal.FreeHGlobal(buffer);
            }
        }

        public static byte[] GetSecurityDescriptor(KeyInfo key)
        {
            return key.IsCng ? GetCng(key) : GetCapi(key);
        }

        public static void SetSecurityDescriptor(KeyInfo key, byte[] descriptor)
        {
            if (key.IsCng)
                SetCng(key, descriptor);
            else
                SetCapi(key, descriptor);
        }

        static IntPtr OpenCapi(KeyInfo key)
        {
            IntPtr prov;
            uint flags = CRYPT_SILENT | (key.MachineKey ? CRYPT_MACHINE_KEYSET : 0);
            if (!NativeMethods.CryptAcquireContextW(out prov, key.Container, key.Provider, key.ProviderType, flags))
                throw Fail(Marshal.GetLastWin32Error(), "opening the CAPI key container " + key.Container);
            return prov;
        }

        static byte[] GetCapi(KeyInfo key)
        {
            IntPtr prov = OpenCapi(key);
            try
            {
                uint size = 0;
                if (!NativeMethods.CryptGetProvParam(prov, PP_KEYSET_SEC_DESCR, null, ref size,
                    DACL_SECURITY_INFORMATION))
                    throw Fail(Marshal.GetLastWin32Error(), "reading the key's security descriptor");
                byte[] data = new byte[size];
                if (!NativeMethods.CryptGetProvParam(prov, PP_KEYSET_SEC_DESCR, data, ref size,
                    DACL_SECURITY_INFORMATION))
                    throw Fail(Marshal.GetLastWin32Error(), "reading the key's security descriptor");
                return data;
            }
            finally
            {
                NativeMethods.CryptReleaseContext(prov, 0);
            }
        }

        static void SetCapi(KeyInfo key, byte[] descriptor)
        {
            IntPtr prov = OpenCapi(key);
            try
            {
                if (!NativeMethods.CryptSetProvParam(prov, PP_KEYSET_SEC_DESCR, descriptor, DACL_SECURITY_INFORMATION))
                    throw Fail(Marshal.GetLastWin32Error(), "writing the key's security descriptor");
            }
            finally
            {
                NativeMethods.CryptReleaseContext(prov, 0);
            }
        }

        static IntPtr OpenCng(KeyInfo key, out IntPtr provider)
        {
            int status = NativeMethods.NCryptOpenStorageProvider(out provider, key.Provider, 0);
            if (status != 0)
                throw Fail(status, "opening the key storage provider " + key.Provider);
            IntPtr handle;
            uint flags = NCRYPT_SILENT_FLAG | (key.MachineKey ? NCRYPT_MACHINE_KEY_FLAG : 0);
            status = NativeMethods.NCryptOpenKey(provider, out handle, key.Container, 0, flags);
            if (status != 0)
            {
                NativeMethods.NCryptFreeObject(provider);
                provider = IntPtr.Zero;
                throw Fail(status, "opening the CNG key " + key.Container);
            }
            return handle;
        }

        static byte[] GetCng(KeyInfo key)
        {
            IntPtr provider;
            IntPtr handle = OpenCng(key, out provider);
            try
            {
                uint size;
                uint flags = DACL_SECURITY_INFORMATION | NCRYPT_SILENT_FLAG;
                int status = NativeMethods.NCryptGetProperty(handle, NCRYPT_SECURITY_DESCR_PROPERTY, null, 0, out size,
                    flags);
                if (status != 0)
                    throw Fail(status, "reading the key's security descriptor");
                byte[] data = new byte[size];
                status = NativeMethods.NCryptGetProperty(handle, NCRYPT_SECURITY_DESCR_PROPERTY, data, size, out size,
                    flags);
                if (status != 0)
                    throw Fail(status, "reading the key's security descriptor");
                return data;
            }
            finally
            {
                NativeMethods.NCryptFreeObject(handle);
                NativeMethods.NCryptFreeObject(provider);
            }
        }

        static void SetCng(KeyInfo key, byte[] descriptor)
        {
            IntPtr provider;
            IntPtr handle = OpenCng(key, out provider);
            try
            {
                uint flags = DACL_SECURITY_INFORMATION | NCRYPT_SILENT_FLAG | NCRYPT_PERSIST_FLAG;
                int status = NativeMethods.NCryptSetProperty(handle, NCRYPT_SECURITY_DESCR_PROPERTY, descriptor,
                    (uint)descriptor.Length, flags);
                if (status != 0)
                    throw Fail(status, "writing the key's security descriptor");
            }
            finally
            {
                NativeMethods.NCryptFreeObject(handle);
                NativeMethods.NCryptFreeObject(provider);
            }
        }
    }
}
'@

# certlm.msc's masks: Read = GENERIC_READ | READ_CONTROL | SYNCHRONIZE | FILE_READ_DATA/EA/ATTRIBUTES,
# Full control = GENERIC_READ | GENERIC_WRITE | GENERIC_ALL | FILE_ALL_ACCESS.
$script:CertlmReadMask = [int]0x80120089
$script:CertlmFullMask = [int]0xD01F01FF
# The same rights once generic bits are mapped to specific ones (file-style mapping of key files).
$script:NormalReadMask = 0x00120089
$script:NormalFullMask = 0x001F01FF
$script:ProtectedSids = @('S-1-5-18', 'S-1-5-32-544')

Function Import-RobotCertKeyAclType {
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [Ansible.Basic.AnsibleModule]
        $Module
    )

    if (-not ('SnowRpa.RobotCerts.KeyAcl.KeySecurity' -as [type])) {
        Add-CSharpType -AnsibleModule $Module -References $script:KeyAclCode
    }
}

Function ConvertTo-RobotCertNormalMask {
    <#
    .SYNOPSIS
    Maps the generic bits of an access mask to the specific rights they grant on a key.
    #>
    [CmdletBinding()]
    [OutputType([int])]
    param (
        [Parameter(Mandatory = $true)]
        [int]
        $Mask
    )

    $normal = $Mask -band 0x0FFFFFFF
    if ($Mask -band [int]0x80000000) { $normal = $normal -bor 0x00120089 }  # GENERIC_READ
    if ($Mask -band 0x40000000) { $normal = $normal -bor 0x00120116 }  # GENERIC_WRITE
    if ($Mask -band 0x20000000) { $normal = $normal -bor 0x001200A0 }  # GENERIC_EXECUTE
    if ($Mask -band 0x10000000) { $normal = $normal -bor 0x001F01FF }  # GENERIC_ALL
    $normal
}

Function Get-RobotCertRightsName {
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory = $true)]
        [int]
        $Mask
    )

    $normal = ConvertTo-RobotCertNormalMask -Mask $Mask
    if (($normal -band $script:NormalFullMask) -eq $script:NormalFullMask) {
        'full_control'
    }
    elseif (($normal -band $script:NormalReadMask) -eq $script:NormalReadMask) {
        'read'
    }
    else {
        'special'
    }
}

Function ConvertTo-RobotCertSid {
    <#
    .SYNOPSIS
    Resolves an account name or SID string to a SecurityIdentifier, failing with one clear line.
    #>
    [CmdletBinding()]
    [OutputType([System.Security.Principal.SecurityIdentifier])]
    param (
        [Parameter(Mandatory = $true)]
        [string]
        $Account
    )

    if ($Account -match '^S-1-\d+(-\d+)+$') {
        return New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList $Account
    }
    try {
        $ntAccount = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $Account
        $ntAccount.Translate([System.Security.Principal.SecurityIdentifier])
    }
    catch {
        throw "account '$Account' could not be resolved to a SID on this host; give DOMAIN\user, .\user or a SID"
    }
}

Function Get-RobotCertAccountName {
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory = $true)]
        [System.Security.Principal.SecurityIdentifier]
        $Sid
    )

    try {
        $Sid.Translate([System.Security.Principal.NTAccount]).Value
    }
    catch {
        $Sid.Value
    }
}

Function ConvertTo-RobotCertAceList {
    <#
    .SYNOPSIS
    The DACL of a key security descriptor as plain hashtables for returns and diffs.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [System.Security.AccessControl.RawSecurityDescriptor]
        $Descriptor
    )

    $list = [System.Collections.Generic.List[Object]]@()
    if ($null -eq $Descriptor.DiscretionaryAcl) {
        return , $list
    }
    foreach ($ace in $Descriptor.DiscretionaryAcl) {
        if ($ace -isnot [System.Security.AccessControl.CommonAce]) {
            continue
        }
        $type = if ($ace.AceQualifier -eq [System.Security.AccessControl.AceQualifier]::AccessDenied) {
            'deny'
        }
        else {
            'allow'
        }
        $list.Add(@{
                sid = $ace.SecurityIdentifier.Value
                account = Get-RobotCertAccountName -Sid $ace.SecurityIdentifier
                type = $type
                rights = Get-RobotCertRightsName -Mask $ace.AccessMask
                mask = '0x{0:X8}' -f $ace.AccessMask
                inherited = $ace.IsInherited
            })
    }
    , $list
}

Function Get-RobotCertKeyInfo {
    <#
    .SYNOPSIS
    Which provider and container hold the certificate's key; throws KeyAccessException (Reason missing) if none.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [Ansible.Basic.AnsibleModule]
        $Module,

        [Parameter(Mandatory = $true)]
        [System.Security.Cryptography.X509Certificates.X509Certificate2]
        $Certificate
    )

    Import-RobotCertKeyAclType -Module $Module
    [SnowRpa.RobotCerts.KeyAcl.KeySecurity]::GetKeyInfo($Certificate.Handle)
}

Function Format-RobotCertKeyError {
    <#
    .SYNOPSIS
    One line telling a missing key from a key the current identity may not open, naming the fix.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory = $true)]
        [System.Exception]
        $Exception,

        [Parameter(Mandatory = $true)]
        [string]
        $Thumbprint,

        [Parameter(Mandatory = $true)]
        [string]
        $Store
    )

    $identity = [System.Security.Principal.WindowsIdentity]::GetCurrent().Name
    # By name: the type is missing when compiling it was what failed.
    $accessName = 'SnowRpa.RobotCerts.KeyAcl.KeyAccessException'
    $inner = $Exception
    while ($null -ne $inner.InnerException -and $inner.GetType().FullName -ne $accessName) {
        $inner = $inner.InnerException
    }
    if ($inner.GetType().FullName -eq $accessName) {
        if ($inner.Reason -eq 'missing') {
            return ("key missing: the certificate $Thumbprint in $Store has no usable private key " +
                "($($inner.Message)); import it again with its key")
        }
        if ($inner.Reason -eq 'denied') {
            return ("access denied: $identity may not read or change the private key of $Thumbprint in $Store " +
                "($($inner.Message)); run as an administrator for LocalMachine keys, or become the key's user")
        }
    }
    "the private key of $Thumbprint in $Store could not be read: $($Exception.Message)"
}

Function Get-RobotCertKeySecurity {
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [Ansible.Basic.AnsibleModule]
        $Module,

        [Parameter(Mandatory = $true)]
        [System.Security.Cryptography.X509Certificates.X509Certificate2]
        $Certificate
    )

    $info = Get-RobotCertKeyInfo -Module $Module -Certificate $Certificate
    $bytes = [SnowRpa.RobotCerts.KeyAcl.KeySecurity]::GetSecurityDescriptor($info)
    $descriptor = New-Object -TypeName System.Security.AccessControl.RawSecurityDescriptor -ArgumentList $bytes, 0
    @{
        Info = $info
        Descriptor = $descriptor
    }
}

Function Test-RobotCertKeyUsable {
    <#
    .SYNOPSIS
    Proves the key opens by signing with it: HasPrivateKey only says a key property exists.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [System.Security.Cryptography.X509Certificates.X509Certificate2]
        $Certificate
    )

    $result = @{
        usable = $false
        algorithm = $null
        exportable = $null
        error = $null
    }
    if (-not $Certificate.HasPrivateKey) {
        $result.error = 'the certificate has no private key property'
        return $result
    }
    $key = $null
    try {
        # $cert.PrivateKey is null for CNG keys on .NET Framework; these helpers return CNG and CAPI keys.
        $key = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($Certificate)
        if ($null -ne $key) {
            $result.algorithm = 'RSA'
            $data = [byte[]](1, 2, 3)
            $pkcs1 = [System.Security.Cryptography.RSASignaturePadding]::Pkcs1
            try {
                $null = $key.SignData($data, [System.Security.Cryptography.HashAlgorithmName]::SHA256, $pkcs1)
            }
            catch [System.Security.Cryptography.CryptographicException] {
                # A PROV_RSA_FULL CAPI container cannot sign SHA-256; any signature proves the key opens.
                if ($key -isnot [System.Security.Cryptography.RSACryptoServiceProvider]) {
                    throw
                }
                $null = $key.SignData($data, [System.Security.Cryptography.HashAlgorithmName]::SHA1, $pkcs1)
            }
        }
        else {
            $key = [System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::GetECDsaPrivateKey(
                $Certificate)
            if ($null -eq $key) {
                $result.error = 'the key is neither RSA nor ECDSA'
                return $result
            }
            $result.algorithm = 'ECDSA'
            $null = $key.SignData([byte[]](1, 2, 3), [System.Security.Cryptography.HashAlgorithmName]::SHA256)
        }
        $result.usable = $true
        if ($key -is [System.Security.Cryptography.RSACryptoServiceProvider]) {
            $result.exportable = $key.CspKeyContainerInfo.Exportable
        }
        elseif ($key.PSObject.Properties.Name -contains 'Key') {
            $policy = $key.Key.ExportPolicy
            $result.exportable = ($policy -band [System.Security.Cryptography.CngExportPolicies]::AllowExport) -ne 0
        }
    }
    catch {
        $result.error = $_.Exception.Message
    }
    finally {
        if ($null -ne $key) {
            $key.Dispose()
        }
    }
    $result
}

Function Set-RobotCertKeyAccess {
    <#
    .SYNOPSIS
    Grants or removes Read or Full control on a certificate's private key, idempotently by SID.

    .DESCRIPTION
    Compares normalised masks of explicit allow ACEs; group membership does not count. Exact also
    removes Full control from the named users. Never lowers the rights of SYSTEM or Administrators.
    Writes nothing when CheckMode is set. Throws one-line messages.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [Ansible.Basic.AnsibleModule]
        $Module,

        [Parameter(Mandatory = $true)]
        [System.Security.Cryptography.X509Certificates.X509Certificate2]
        $Certificate,

        [Parameter(Mandatory = $true)]
        [string]
        $Store,

        [Parameter(Mandatory = $true)]
        [AllowEmptyCollection()]
        [string[]]
        $Users,

        [ValidateSet('read', 'full_control')]
        [string]
        $Rights = 'read',

        [ValidateSet('present', 'absent')]
        [string]
        $State = 'present',

        [switch]
        $Exact,

        [switch]
        $CheckMode
    )

    try {
        $security = Get-RobotCertKeySecurity -Module $Module -Certificate $Certificate
    }
    catch {
        throw (Format-RobotCertKeyError -Exception $_.Exception -Thumbprint $Certificate.Thumbprint -Store $Store)
    }
    $descriptor = $security.Descriptor
    $before = ConvertTo-RobotCertAceList -Descriptor $descriptor
    $acl = $descriptor.DiscretionaryAcl
    if ($null -eq $acl) {
        throw "the private key of $($Certificate.Thumbprint) in $Store has no DACL (everyone has access); set one first"
    }

    $wantNormal = if ($Rights -eq 'full_control') { $script:NormalFullMask } else { $script:NormalReadMask }
    $wantMask = if ($Rights -eq 'full_control') { $script:CertlmFullMask } else { $script:CertlmReadMask }
    $warnings = [System.Collections.Generic.List[String]]@()
    $changed = $false
    $seen = @{}

    foreach ($user in $Users) {
        $sid = ConvertTo-RobotCertSid -Account $user
        if ($seen.ContainsKey($sid.Value)) {
            continue
        }
        $seen[$sid.Value] = $true

        $allowIndexes = [System.Collections.Generic.List[int]]@()
        $have = 0
        for ($i = 0; $i -lt $acl.Count; $i++) {
            $ace = $acl[$i]
            if ($ace -isnot [System.Security.AccessControl.CommonAce] -or $ace.SecurityIdentifier -ne $sid) {
                continue
            }
            if ($ace.AceQualifier -eq [System.Security.AccessControl.AceQualifier]::AccessDenied) {
                $warnings.Add("$user has a deny entry on the key of $($Certificate.Thumbprint); it overrides any grant")
                continue
            }
            if (-not $ace.IsInherited) {
                $allowIndexes.Add($i)
                $have = $have -bor (ConvertTo-RobotCertNormalMask -Mask $ace.AccessMask)
            }
        }

        # Lowering: absent removes access (or, for full_control, only what goes beyond Read); exact trims to Read.
        $lower = $false
        $keepRead = $false
        if ($State -eq 'absent') {
            if ($Rights -eq 'full_control') {
                $lower = ($have -band (-bnot $script:NormalReadMask)) -ne 0
                $keepRead = ($have -band $script:NormalReadMask) -eq $script:NormalReadMask
            }
            else {
                $lower = $allowIndexes.Count -gt 0
            }
        }
        elseif ($Exact -and $Rights -eq 'read') {
            $lower = ($have -band (-bnot $script:NormalReadMask)) -ne 0
            $keepRead = $true
        }

        if ($lower -and $script:ProtectedSids -contains $sid.Value) {
            throw ("refusing to lower the rights of $user ($($sid.Value)) on the private key of " +
                "$($Certificate.Thumbprint): SYSTEM and Administrators keep their access; leave them out of users")
        }

        if ($lower) {
            for ($j = $allowIndexes.Count - 1; $j -ge 0; $j--) {
                $acl.RemoveAce($allowIndexes[$j])
            }
            $changed = $true
            if ($keepRead) {
                Add-RobotCertAllowAce -Acl $acl -Sid $sid -Mask $script:CertlmReadMask
            }
        }
        elseif ($State -eq 'present' -and ($have -band $wantNormal) -ne $wantNormal) {
            Add-RobotCertAllowAce -Acl $acl -Sid $sid -Mask $wantMask
            $changed = $true
        }
    }

    if ($changed -and -not $CheckMode) {
        $bytes = New-Object -TypeName byte[] -ArgumentList $descriptor.BinaryLength
        $descriptor.GetBinaryForm($bytes, 0)
        try {
            [SnowRpa.RobotCerts.KeyAcl.KeySecurity]::SetSecurityDescriptor($security.Info, $bytes)
        }
        catch {
            throw (Format-RobotCertKeyError -Exception $_.Exception -Thumbprint $Certificate.Thumbprint -Store $Store)
        }
    }

    @{
        changed = $changed
        key_provider = $security.Info.Provider
        key_name = $security.Info.Container
        key_storage = if ($security.Info.IsCng) { 'CNG' } else { 'CAPI' }
        machine_key = $security.Info.MachineKey
        before = $before
        after = ConvertTo-RobotCertAceList -Descriptor $descriptor
        warnings = $warnings
    }
}

Function Add-RobotCertAllowAce {
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [System.Security.AccessControl.RawAcl]
        $Acl,

        [Parameter(Mandatory = $true)]
        [System.Security.Principal.SecurityIdentifier]
        $Sid,

        [Parameter(Mandatory = $true)]
        [int]
        $Mask
    )

    # Canonical order: explicit entries (deny first) before inherited ones, so insert before the first inherited.
    $index = $Acl.Count
    for ($i = 0; $i -lt $Acl.Count; $i++) {
        if ($Acl[$i].IsInherited) {
            $index = $i
            break
        }
    }
    $ace = New-Object -TypeName System.Security.AccessControl.CommonAce -ArgumentList @(
        [System.Security.AccessControl.AceFlags]::None,
        [System.Security.AccessControl.AceQualifier]::AccessAllowed,
        $Mask,
        $Sid,
        $false,
        $null
    )
    $Acl.InsertAce($index, $ace)
}

Function Get-RobotCertKeyFacts {
    <#
    .SYNOPSIS
    Provider, container, keyset and ACEs of a certificate's key for info returns; never throws.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [Ansible.Basic.AnsibleModule]
        $Module,

        [Parameter(Mandatory = $true)]
        [System.Security.Cryptography.X509Certificates.X509Certificate2]
        $Certificate,

        [Parameter(Mandatory = $true)]
        [string]
        $Store,

        [switch]
        $IncludeAcl
    )

    $facts = @{
        key_provider = $null
        key_name = $null
        key_storage = $null
        machine_key = $null
        key_acl = $null
        key_error = $null
    }
    if (-not $Certificate.HasPrivateKey) {
        return $facts
    }
    try {
        $info = Get-RobotCertKeyInfo -Module $Module -Certificate $Certificate
        $facts.key_provider = $info.Provider
        $facts.key_name = $info.Container
        $facts.key_storage = if ($info.IsCng) { 'CNG' } else { 'CAPI' }
        $facts.machine_key = $info.MachineKey
        if ($IncludeAcl) {
            $security = Get-RobotCertKeySecurity -Module $Module -Certificate $Certificate
            $facts.key_acl = ConvertTo-RobotCertAceList -Descriptor $security.Descriptor
        }
    }
    catch {
        $facts.key_error = Format-RobotCertKeyError -Exception $_.Exception -Thumbprint $Certificate.Thumbprint `
            -Store $Store
    }
    $facts
}

$exportMembers = @{
    Function = @(
        'ConvertTo-RobotCertSid'
        'Format-RobotCertKeyError'
        'Get-RobotCertKeyFacts'
        'Get-RobotCertKeyInfo'
        'Set-RobotCertKeyAccess'
        'Test-RobotCertKeyUsable'
    )
}
Export-ModuleMember @exportMembers
