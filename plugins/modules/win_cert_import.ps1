#!powershell

# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._RobotCertKeyAcl

# The action plugin opened the PKCS#12 on the controller and sends its bytes and a plan (_plan): the leaf's
# thumbprint, where each chain certificate goes, the build the encryption needs. This side only executes it,
# except for one choice: when the controller did not know the build, it also sends a legacy re-encoding
# (_pkcs12_legacy_content) and the host picks by its own build.
$spec = @{
    options = @{
        state = @{ type = 'str'; default = 'present'; choices = 'present', 'absent' }
        thumbprint = @{ type = 'str' }
        store_location = @{ type = 'str'; default = 'LocalMachine'; choices = 'LocalMachine', 'CurrentUser' }
        store_name = @{ type = 'str'; default = 'My' }
        key_storage = @{ type = 'str'; default = 'auto'; choices = 'auto', 'machine', 'user' }
        exportable = @{ type = 'bool'; default = $false }
        friendly_name = @{ type = 'str' }
        remove_superseded = @{ type = 'bool'; default = $false }
        key_readers = @{ type = 'list'; elements = 'str'; default = @() }
        key_readers_exact = @{ type = 'bool'; default = $false }
        _plan = @{ type = 'dict' }
        _pkcs12_content = @{ type = 'str'; no_log = $true }
        _pkcs12_passphrase = @{ type = 'str'; no_log = $true }
        _pkcs12_legacy_content = @{ type = 'str'; no_log = $true }
    }
    required_if = @(
        , @('state', 'present', @('_plan', '_pkcs12_content'))
    )
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

if (-not $module.Params.thumbprint) {
    $module.FailJson('thumbprint is missing: run this module through its action plugin, which computes it')
}
$state = $module.Params.state
$thumbprint = $module.Params.thumbprint.ToUpperInvariant()
$storeLocation = $module.Params.store_location
$storeName = $module.Params.store_name
$keyStorage = $module.Params.key_storage
$exportable = $module.Params.exportable
$friendlyName = $module.Params.friendly_name
$removeSuperseded = $module.Params.remove_superseded
$keyReaders = [string[]]@($module.Params.key_readers)
$keyReadersExact = $module.Params.key_readers_exact
$plan = $module.Params._plan
$pkcs12Content = $module.Params._pkcs12_content
$pkcs12Passphrase = $module.Params._pkcs12_passphrase
$pkcs12LegacyContent = $module.Params._pkcs12_legacy_content

$storeLabel = "$storeLocation\$storeName"
$identity = [System.Security.Principal.WindowsIdentity]::GetCurrent()
$machineKey = $keyStorage -eq 'machine' -or ($keyStorage -eq 'auto' -and $storeLocation -eq 'LocalMachine')

Function Exit-ImportError {
    <#
    .SYNOPSIS
    Fails with an error code the action plugin turns into the full message and its fix.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [Ansible.Basic.AnsibleModule]
        $Module,

        [Parameter(Mandatory = $true)]
        [string]
        $Code,

        [Parameter(Mandatory = $true)]
        [string]
        $Message,

        [hashtable]
        $Detail = @{}
    )

    $errorInfo = @{ code = $Code }
    foreach ($key in $Detail.Keys) {
        $errorInfo[$key] = $Detail[$key]
    }
    $Module.Result.error = $errorInfo
    $Module.FailJson($Message)
}

Function Open-CertStore {
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [string]
        $Location,

        [Parameter(Mandatory = $true)]
        [string]
        $Name,

        [switch]
        $Write
    )

    $store = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Store -ArgumentList @(
        $Name,
        [System.Security.Cryptography.X509Certificates.StoreLocation]$Location
    )
    # Check mode and lookups open read-only; OpenExistingOnly keeps a lookup from creating a store.
    $flags = if ($Write) { 'ReadWrite' } else { 'ReadOnly, OpenExistingOnly' }
    $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]$flags)
    , $store
}

Function Find-StoreCertificate {
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [System.Security.Cryptography.X509Certificates.X509Store]
        $Store,

        [Parameter(Mandatory = $true)]
        [string]
        $Thumbprint
    )

    $found = $Store.Certificates.Find(
        [System.Security.Cryptography.X509Certificates.X509FindType]::FindByThumbprint, $Thumbprint, $false)
    if ($found.Count -gt 0) {
        $found[0]
    }
}

Function Test-AccessDenied {
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory = $true)]
        [System.Exception]
        $Exception
    )

    # E_ACCESSDENIED, as CryptographicException or UnauthorizedAccessException; .NET method errors arrive
    # wrapped in MethodInvocationException, so look at the innermost exception.
    $base = $Exception.GetBaseException()
    $base -is [System.UnauthorizedAccessException] -or $base.HResult -eq [int]0x80070005
}

Function Get-OsBuild {
    [CmdletBinding()]
    [OutputType([int])]
    param ()

    # Environment.OSVersion depends on the host process manifest; the registry value does not.
    $key = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
    [int](Get-ItemProperty -LiteralPath $key -Name CurrentBuildNumber).CurrentBuildNumber
}

Function Test-UserProfile {
    [CmdletBinding()]
    [OutputType([bool])]
    param ()

    # DPAPI keeps user keys under the profile; become without a loaded profile has no AppData.
    $appData = [System.Environment]::GetFolderPath('ApplicationData')
    [bool]$appData -and (Test-Path -LiteralPath $appData)
}

Function Test-NetworkLogon {
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory = $true)]
        [System.Security.Principal.WindowsIdentity]
        $Identity
    )

    # NETWORK (S-1-5-2) in the token: a WinRM logon without the password, so DPAPI cannot protect user keys.
    $network = New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList 'S-1-5-2'
    $Identity.Groups -contains $network
}

Function Import-LeafCertificate {
    <#
    .SYNOPSIS
    Loads the PKCS#12 once, persisting only the leaf's key, and returns the leaf.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [byte[]]
        $Data,

        [Parameter(Mandatory = $true)]
        [AllowEmptyString()]
        [string]
        $Passphrase,

        [Parameter(Mandatory = $true)]
        [string]
        $Thumbprint,

        [bool]
        $MachineKey,

        [bool]
        $Exportable
    )

    # MachineKeySet explicitly: the default keyset puts the key in the connecting user's profile (REFERENCE 4).
    $flags = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::PersistKeySet
    if ($MachineKey) {
        $flags = $flags -bor [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::MachineKeySet
    }
    else {
        $flags = $flags -bor [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::UserKeySet
    }
    if ($Exportable) {
        $flags = $flags -bor [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::Exportable
    }
    $collection = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2Collection
    $collection.Import($Data, $Passphrase, $flags)
    $leaf = $null
    foreach ($cert in $collection) {
        if ($cert.Thumbprint -eq $Thumbprint) {
            $leaf = $cert
        }
    }
    $leaf
}

Function Get-SupersededCertificate {
    <#
    .SYNOPSIS
    Certificates in the store with the same friendly name, or the same subject and purpose, as the new one.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [System.Security.Cryptography.X509Certificates.X509Store]
        $Store,

        [Parameter(Mandatory = $true)]
        [string]
        $Thumbprint,

        [AllowEmptyString()]
        [string]
        $FriendlyName,

        [Parameter(Mandatory = $true)]
        [string]
        $SubjectDer,

        [AllowEmptyString()]
        [string]
        $EkuOid
    )

    foreach ($cert in $Store.Certificates) {
        if ($cert.Thumbprint -eq $Thumbprint) {
            continue
        }
        $sameName = $FriendlyName -and $cert.FriendlyName -eq $FriendlyName
        $sameSubject = [System.Convert]::ToBase64String($cert.SubjectName.RawData) -eq $SubjectDer
        $samePurpose = $false
        if ($EkuOid) {
            foreach ($extension in $cert.Extensions) {
                if ($extension -is [System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension]) {
                    foreach ($oid in $extension.EnhancedKeyUsages) {
                        if ($oid.Value -eq $EkuOid) {
                            $samePurpose = $true
                        }
                    }
                }
            }
        }
        if ($sameName -or ($sameSubject -and $samePurpose)) {
            $cert
        }
    }
}

$module.Result.changed = $false
$module.Result.thumbprint = $thumbprint
$module.Result.store = $storeLabel
$module.Result.identity = $identity.Name
$module.Result.chain = @()
$module.Result.superseded = @()

Function Find-CertificateIn {
    <#
    .SYNOPSIS
    Looks a thumbprint up read-only; a store that does not exist holds nothing.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory = $true)]
        [string]
        $Location,

        [Parameter(Mandatory = $true)]
        [string]
        $Name,

        [Parameter(Mandatory = $true)]
        [string]
        $Thumbprint
    )

    try {
        $lookup = Open-CertStore -Location $Location -Name $Name
    }
    catch [System.Security.Cryptography.CryptographicException] {
        return
    }
    try {
        Find-StoreCertificate -Store $lookup -Thumbprint $Thumbprint
    }
    finally {
        $lookup.Close()
    }
}

if ($state -eq 'absent') {
    $existing = Find-CertificateIn -Location $storeLocation -Name $storeName -Thumbprint $thumbprint
    if ($null -ne $existing) {
        $module.Result.changed = $true
        if (-not $module.CheckMode) {
            try {
                $store = Open-CertStore -Location $storeLocation -Name $storeName -Write
                try {
                    $store.Remove($existing)
                }
                finally {
                    $store.Close()
                }
            }
            catch {
                if (Test-AccessDenied -Exception $_.Exception) {
                    Exit-ImportError -Module $module -Code 'store_access_denied' -Message $_.Exception.Message `
                        -Detail @{ store = $storeLabel }
                }
                $module.FailJson("cannot remove $thumbprint from $storeLabel`: $($_.Exception.Message)", $_)
            }
        }
    }
    $module.Diff.before = @{ thumbprint = $thumbprint; store = $storeLabel; present = $null -ne $existing }
    $module.Diff.after = @{ thumbprint = $thumbprint; store = $storeLabel; present = $false }
    $module.ExitJson()
}

# Pick the encoding this build imports, or fail before anything is written: Windows itself would
# report a wrong password (REFERENCE 3 and 7).
$osBuild = Get-OsBuild
$module.Result.os_build = $osBuild
$importProfile = [string]$plan.profile
if ([int]$plan.min_build -gt 0 -and $osBuild -lt [int]$plan.min_build) {
    if ($pkcs12LegacyContent) {
        $pkcs12Content = $pkcs12LegacyContent
        $importProfile = 'legacy'
    }
    else {
        Exit-ImportError -Module $module -Code 'os_build' -Message "Windows build $osBuild cannot import this PKCS#12"
    }
}
$module.Result.profile = $importProfile
if (-not $machineKey -and ((Test-NetworkLogon -Identity $identity) -or -not (Test-UserProfile))) {
    Exit-ImportError -Module $module -Code 'no_user_credentials' `
        -Message "$($identity.Name) has a network logon or no loaded profile"
}

# Idempotency by the controller's thumbprint: the PFX is never loaded just to compare (REFERENCE 4).
$before = @{ thumbprint = $thumbprint; store = $storeLabel; present = $false }
$existing = Find-CertificateIn -Location $storeLocation -Name $storeName -Thumbprint $thumbprint

$needImport = $true
if ($null -ne $existing) {
    $usable = Test-RobotCertKeyUsable -Certificate $existing
    $facts = Get-RobotCertKeyFacts -Module $module -Certificate $existing -Store $storeLabel
    $before.present = $true
    $before.friendly_name = $existing.FriendlyName
    $before.key_usable = $usable.usable
    $before.machine_key = $facts.machine_key
    $needImport = -not $usable.usable -or $facts.machine_key -ne $machineKey
}

$certificate = $existing
if ($needImport) {
    $module.Result.changed = $true
    if (-not $module.CheckMode) {
        $data = [System.Convert]::FromBase64String($pkcs12Content)
        try {
            $leafParams = @{
                Data = $data
                Passphrase = [string]$pkcs12Passphrase
                Thumbprint = $thumbprint
                MachineKey = $machineKey
                Exportable = $exportable
            }
            $leaf = Import-LeafCertificate @leafParams
        }
        catch {
            # ERROR_INVALID_PASSWORD although the controller opened it: an encryption this build cannot read.
            if ($_.Exception.GetBaseException().HResult -eq [int]0x80070056) {
                Exit-ImportError -Module $module -Code 'bad_password' -Message $_.Exception.Message
            }
            if (Test-AccessDenied -Exception $_.Exception) {
                Exit-ImportError -Module $module -Code 'store_access_denied' -Message $_.Exception.Message `
                    -Detail @{ store = $storeLabel }
            }
            $module.FailJson("cannot load the PKCS#12 on the host: $($_.Exception.Message)", $_)
        }
        if ($null -eq $leaf) {
            $module.FailJson("the PKCS#12 sent by the controller holds no certificate $thumbprint")
        }
        try {
            $store = Open-CertStore -Location $storeLocation -Name $storeName -Write
            try {
                $store.Add($leaf)
                $certificate = Find-StoreCertificate -Store $store -Thumbprint $thumbprint
            }
            finally {
                $store.Close()
            }
        }
        catch {
            if (Test-AccessDenied -Exception $_.Exception) {
                Exit-ImportError -Module $module -Code 'store_access_denied' -Message $_.Exception.Message `
                    -Detail @{ store = $storeLabel }
            }
            $module.FailJson("cannot add $thumbprint to $storeLabel`: $($_.Exception.Message)", $_)
        }
        $usable = Test-RobotCertKeyUsable -Certificate $certificate
        if (-not $usable.usable) {
            Exit-ImportError -Module $module -Code 'key_not_usable' -Message "key of $thumbprint does not open" `
                -Detail @{ detail = [string]$usable.error; store = $storeLabel }
        }
    }
}

$after = @{ thumbprint = $thumbprint; store = $storeLabel; present = $true; friendly_name = $null }
if ($null -ne $certificate) {
    $after.friendly_name = $certificate.FriendlyName
}
if ($friendlyName -and ($null -eq $certificate -or $certificate.FriendlyName -ne $friendlyName)) {
    $module.Result.changed = $true
    $after.friendly_name = $friendlyName
    if (-not $module.CheckMode) {
        # The store copy keeps a link to its store, so the property is written there.
        $certificate.FriendlyName = $friendlyName
    }
}

# Chain certificates arrive as DER without keys: adding them writes no key file.
$chainResults = [System.Collections.Generic.List[Object]]@()
foreach ($placement in @($plan.placements)) {
    $label = "$($placement.store_location)\$($placement.store_name)"
    $entry = @{
        thumbprint = $placement.thumbprint
        subject = $placement.subject
        role = $placement.role
        store = $label
        changed = $false
    }
    try {
        $found = Find-CertificateIn -Location $placement.store_location -Name $placement.store_name `
            -Thumbprint $placement.thumbprint
        $present = $null -ne $found
        if (-not $present) {
            $entry.changed = $true
            $module.Result.changed = $true
            if (-not $module.CheckMode) {
                $der = [System.Convert]::FromBase64String($placement.der_b64)
                $chainCert = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2 `
                    -ArgumentList (, $der)
                $store = Open-CertStore -Location $placement.store_location -Name $placement.store_name -Write
                try {
                    $store.Add($chainCert)
                }
                finally {
                    $store.Close()
                }
            }
        }
    }
    catch {
        if (Test-AccessDenied -Exception $_.Exception) {
            Exit-ImportError -Module $module -Code 'store_access_denied' -Message $_.Exception.Message `
                -Detail @{ store = $label }
        }
        $msg = "cannot add chain certificate $($placement.thumbprint) to $label`: $($_.Exception.Message)"
        $module.FailJson($msg, $_)
    }
    $chainResults.Add($entry)
}
$module.Result.chain = $chainResults
$after.chain = @($chainResults | ForEach-Object { "$($_.thumbprint)@$($_.store)" })
$before.chain = @($chainResults | Where-Object { -not $_.changed } | ForEach-Object { "$($_.thumbprint)@$($_.store)" })

# Key readers share win_key_acl's code. A key that does not exist yet (check mode) would get every reader.
if ($keyReaders.Count -gt 0) {
    if ($null -eq $certificate) {
        $module.Result.key_acl = @{ changed = $true; before = @(); after = @(); readers = $keyReaders }
    }
    else {
        $accessParams = @{
            Module = $module
            Certificate = $certificate
            Store = $storeLabel
            Users = $keyReaders
            Rights = 'read'
            State = 'present'
            Exact = $keyReadersExact
            CheckMode = $module.CheckMode
        }
        try {
            $access = Set-RobotCertKeyAccess @accessParams
        }
        catch {
            Exit-ImportError -Module $module -Code 'key_readers' -Message $_.Exception.Message `
                -Detail @{ detail = $_.Exception.Message }
        }
        foreach ($warning in $access.warnings) {
            $module.Warn($warning)
        }
        if ($access.changed) {
            $module.Result.changed = $true
        }
        $module.Result.key_acl = @{ changed = $access.changed; before = $access.before; after = $access.after }
        $before.key_acl = $access.before
        $after.key_acl = $access.after
    }
}

if ($removeSuperseded) {
    $removed = [System.Collections.Generic.List[Object]]@()
    $invariant = [System.Globalization.CultureInfo]::InvariantCulture
    $effectiveName = if ($friendlyName) { $friendlyName } else { [string]$plan.friendly_name }
    try {
        $store = Open-CertStore -Location $storeLocation -Name $storeName -Write:(-not $module.CheckMode)
        try {
            $supersededParams = @{
                Store = $store
                Thumbprint = $thumbprint
                FriendlyName = $effectiveName
                SubjectDer = [string]$plan.subject_der_b64
                EkuOid = [string]$plan.eku_oid
            }
            foreach ($old in @(Get-SupersededCertificate @supersededParams)) {
                $removed.Add(@{
                        thumbprint = $old.Thumbprint
                        subject = $old.Subject
                        friendly_name = $old.FriendlyName
                        not_after = $old.NotAfter.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ', $invariant)
                    })
                if (-not $module.CheckMode) {
                    $store.Remove($old)
                }
            }
        }
        finally {
            $store.Close()
        }
    }
    catch {
        if (Test-AccessDenied -Exception $_.Exception) {
            Exit-ImportError -Module $module -Code 'store_access_denied' -Message $_.Exception.Message `
                -Detail @{ store = $storeLabel }
        }
        # In check mode the store may not exist yet: the import would create it, so nothing is superseded.
        $baseError = $_.Exception.GetBaseException()
        $storeMissing = $module.CheckMode -and $baseError -is [System.Security.Cryptography.CryptographicException]
        if (-not $storeMissing) {
            $module.FailJson("cannot remove superseded certificates from $storeLabel`: $($_.Exception.Message)", $_)
        }
    }
    if ($removed.Count -gt 0) {
        $module.Result.changed = $true
    }
    $module.Result.superseded = $removed
    $before.superseded = @($removed | ForEach-Object { $_.thumbprint })
    $after.superseded = @()
}

$module.Result.subject = $plan.subject
$module.Result.not_after = $plan.not_after
$module.Result.friendly_name = $after.friendly_name
if ($null -ne $certificate) {
    $usable = Test-RobotCertKeyUsable -Certificate $certificate
    $facts = Get-RobotCertKeyFacts -Module $module -Certificate $certificate -Store $storeLabel
    $module.Result.has_private_key = $certificate.HasPrivateKey -and $usable.usable
    $module.Result.key_provider = $facts.key_provider
    $module.Result.machine_key = $facts.machine_key
    $module.Result.exportable = $usable.exportable
    if ($null -ne $usable.exportable -and $usable.exportable -ne $exportable) {
        $module.Warn("the key of $thumbprint is already imported with exportable=$($usable.exportable); " +
            'exportable applies only when the key is imported: remove the certificate (state=absent) to change it')
    }
}
else {
    # Check mode before the first import: report what the import would produce.
    $module.Result.has_private_key = $true
    $module.Result.key_provider = $null
    $module.Result.machine_key = $machineKey
    $module.Result.exportable = $exportable
}
$module.Diff.before = $before
$module.Diff.after = $after

$module.ExitJson()
