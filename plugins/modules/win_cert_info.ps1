#!powershell

# Copyright: contributors to the snowrpa.robot_certs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._RobotCertKeyAcl

$spec = @{
    options = @{
        store_location = @{ type = 'str'; default = 'LocalMachine'; choices = 'LocalMachine', 'CurrentUser' }
        store_name = @{ type = 'str'; default = 'My' }
        thumbprint = @{ type = 'str' }
        friendly_name = @{ type = 'str' }
        subject = @{ type = 'str' }
        purpose = @{ type = 'str'; choices = 'client_auth', 'code_signing' }
        include_acl = @{ type = 'bool'; default = $true }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$storeLocation = $module.Params.store_location
$storeName = $module.Params.store_name
$thumbprint = if ($module.Params.thumbprint) {
    ($module.Params.thumbprint -replace '[\s:]', '').ToUpperInvariant()
}
$friendlyName = $module.Params.friendly_name
$subject = $module.Params.subject
$purpose = $module.Params.purpose
$includeAcl = $module.Params.include_acl

# The EKUs the robot's certificate pickers filter on (REFERENCE 2); the same OIDs the controller checks.
$purposeOids = @{
    client_auth = '1.3.6.1.5.5.7.3.2'
    code_signing = '1.3.6.1.5.5.7.3.3'
}
$storeLabel = "$storeLocation\$storeName"

Function Get-CertificateEku {
    [CmdletBinding()]
    [OutputType([string[]])]
    param (
        [Parameter(Mandatory = $true)]
        [System.Security.Cryptography.X509Certificates.X509Certificate2]
        $Certificate
    )

    $oids = [System.Collections.Generic.List[String]]@()
    foreach ($extension in $Certificate.Extensions) {
        if ($extension -is [System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension]) {
            foreach ($oid in $extension.EnhancedKeyUsages) {
                $oids.Add($oid.Value)
            }
        }
    }
    , $oids.ToArray()
}

Function ConvertTo-IsoTime {
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory = $true)]
        [DateTime]
        $Value
    )

    $Value.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ', [System.Globalization.CultureInfo]::InvariantCulture)
}

$store = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Store -ArgumentList @(
    $storeName,
    [System.Security.Cryptography.X509Certificates.StoreLocation]$storeLocation
)
$certificates = [System.Collections.Generic.List[Object]]@()
$now = [DateTime]::UtcNow
try {
    $store.Open([System.Security.Cryptography.X509Certificates.OpenFlags]'ReadOnly, OpenExistingOnly')
}
catch [System.Security.Cryptography.CryptographicException] {
    $module.Result.store = $storeLabel
    $module.Result.exists = $false
    $module.Result.certificates = $certificates
    $module.ExitJson()
}
try {
    foreach ($cert in $store.Certificates) {
        if ($thumbprint -and $cert.Thumbprint -ne $thumbprint) {
            continue
        }
        if ($friendlyName -and $cert.FriendlyName -ne $friendlyName) {
            continue
        }
        if ($subject -and $cert.Subject -notlike "*$subject*") {
            continue
        }
        $ekus = Get-CertificateEku -Certificate $cert
        if ($purpose -and $ekus -notcontains $purposeOids[$purpose]) {
            continue
        }

        $purposes = @($purposeOids.Keys | Where-Object { $ekus -contains $purposeOids[$_] } | Sort-Object)
        $usable = Test-RobotCertKeyUsable -Certificate $cert
        $facts = Get-RobotCertKeyFacts -Module $module -Certificate $cert -Store $storeLabel -IncludeAcl:$includeAcl
        $notAfter = $cert.NotAfter.ToUniversalTime()
        $certificates.Add(@{
                thumbprint = $cert.Thumbprint
                subject = $cert.Subject
                issuer = $cert.Issuer
                serial_number = $cert.SerialNumber
                friendly_name = $cert.FriendlyName
                not_before = ConvertTo-IsoTime -Value $cert.NotBefore
                not_after = ConvertTo-IsoTime -Value $cert.NotAfter
                expired = $notAfter -le $now
                days_remaining = [int][Math]::Floor(($notAfter - $now).TotalDays)
                ekus = $ekus
                purposes = $purposes
                has_private_key = $cert.HasPrivateKey
                key_usable = $usable.usable
                key_algorithm = $usable.algorithm
                exportable = $usable.exportable
                key_provider = $facts.key_provider
                key_name = $facts.key_name
                key_storage = $facts.key_storage
                machine_key = $facts.machine_key
                key_acl = $facts.key_acl
                key_error = if ($facts.key_error) { $facts.key_error } else { $usable.error }
            })
    }
}
finally {
    $store.Close()
}

$module.Result.store = $storeLabel
$module.Result.exists = $true
$module.Result.certificates = $certificates
$module.ExitJson()
